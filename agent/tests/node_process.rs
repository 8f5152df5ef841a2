//! The real `rackpong-agent node` process against a real broker (embedded
//! rumqttd, or RACKPONG_TEST_BROKER): birth then health with increasing seq,
//! Last Will on SIGSTOP and SIGKILL, `offline` then exit 0 on SIGTERM,
//! store-and-forward across a cut link, an unreachable broker at start, bad
//! flags, garbage sysfs, /healthz and /metrics.

mod mqtt_support;

use std::time::{Duration, Instant};

use mqtt_support::agent::{Agent, BIN, fixture};
use mqtt_support::{Proxy, Subscriber, WAIT, broker_addr, external_broker, unique_rack};
use nix::sys::signal::Signal;
use rackpong_agent::proto::{HealthSample, Topics};

fn sample(m: &mqtt_support::Msg) -> HealthSample {
    serde_json::from_slice(&m.payload).expect("a health sample")
}

struct Rig {
    rack: String,
    topics: Topics,
    sub: Subscriber,
}

impl Rig {
    async fn new(test: &str) -> (Rig, std::net::SocketAddr) {
        let broker = broker_addr();
        let rack = unique_rack(test);
        let topics = Topics::new(&rack);
        let sub = Subscriber::start(broker, &topics.all()).await;
        (Rig { rack, topics, sub }, broker)
    }

    fn status(&self) -> String {
        self.topics.node_status("n1")
    }

    fn health(&self) -> String {
        self.topics.node_health("n1")
    }

    async fn node(&self, broker_url: &str, extra: &[&str]) -> Agent {
        let mut args = vec![
            "--broker",
            broker_url,
            "--rack",
            &self.rack,
            "--node-name",
            "n1",
        ];
        args.extend_from_slice(extra);
        Agent::node(&args).await
    }
}

#[tokio::test]
async fn birth_then_health_samples_with_increasing_seq() {
    let (mut rig, broker) = Rig::new("birth").await;
    let pi4 = fixture("pi4");
    let agent = rig
        .node(
            &format!("mqtt://{broker}"),
            &["--interval", "100ms", "--sysfs-root", pi4.to_str().unwrap()],
        )
        .await;
    let first = rig.sub.next().await;
    assert_eq!(
        (first.topic.as_str(), first.text().as_str()),
        (rig.status().as_str(), "online")
    );
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        let s = sample(&rig.sub.next_on(&rig.health()).await);
        assert_eq!(s.node, "n1");
        assert_eq!(s.temp_c, Some(48.686));
        assert_eq!(s.throttle.and_then(|t| t.raw), Some(0x50005));
        assert_eq!(s.uptime_s, Some(12345));
        assert!(s.memory.is_some());
        seqs.push(s.seq);
    }
    assert_eq!(seqs, [0, 1, 2]);
    let health = agent.healthz().await;
    assert_eq!(health["mqtt_connected"], true);
    assert_eq!(health["leds"]["green"], true);
    let (status, metrics) = agent.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("rackpong_node_temperature_celsius 48.686"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"rackpong_node_throttle{flag="under_voltage",when="now"} 1"#));
    assert!(metrics.contains("rackpong_mqtt_connected 1"));
    let (status, body) = agent.get("/nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("error"));
}

#[tokio::test]
async fn sigterm_publishes_offline_then_exits_zero() {
    let (mut rig, broker) = Rig::new("term").await;
    let mut agent = rig
        .node(&format!("mqtt://{broker}"), &["--interval", "100ms"])
        .await;
    rig.sub.next_on(&rig.health()).await;
    agent.signal(Signal::SIGTERM);
    let status = tokio::time::timeout(WAIT, agent.child.wait())
        .await
        .expect("exit in time")
        .unwrap();
    assert!(status.success(), "{status:?}");
    rig.sub.wait_for_text(&rig.status(), "offline").await;
    // ...and it is retained: a later subscriber sees it.
    let mut late = Subscriber::start(broker, &rig.status()).await;
    let m = late.next().await;
    assert_eq!((m.text().as_str(), m.retain), ("offline", true));
}

#[tokio::test]
async fn sigstop_gets_the_last_will_within_one_and_a_half_keepalives() {
    let (mut rig, broker) = Rig::new("stop").await;
    let agent = rig
        .node(
            &format!("mqtt://{broker}"),
            &["--interval", "100ms", "--mqtt-keepalive", "1s"],
        )
        .await;
    rig.sub.next_on(&rig.health()).await;
    let stopped = Instant::now();
    agent.signal(Signal::SIGSTOP);
    // 1.5 × keepalive + 1 s.
    let mut bound = Duration::from_millis(2500);
    if external_broker() {
        // Debian 12's mosquitto 2.0.11 sweeps keepalives only when more than
        // 5 s passed since its last sweep (keepalive.c), so its Last Will can
        // come up to ~6 s later than the keepalive says; rumqttd is exact.
        bound += Duration::from_secs(6);
    }
    tokio::time::timeout(bound, rig.sub.wait_for_text(&rig.status(), "offline"))
        .await
        .unwrap_or_else(|_| panic!("no Last Will within {bound:?}"));
    eprintln!("Last Will after {:?}", stopped.elapsed());
    agent.signal(Signal::SIGKILL);
    agent.signal(Signal::SIGCONT);
}

#[tokio::test]
async fn sigkill_gets_the_last_will_at_once() {
    let (mut rig, broker) = Rig::new("kill").await;
    let agent = rig
        .node(&format!("mqtt://{broker}"), &["--interval", "100ms"])
        .await;
    rig.sub.next_on(&rig.health()).await;
    agent.signal(Signal::SIGKILL);
    // Keepalive is the default 5 s: arriving well before it proves the
    // broker reacted to the closed socket, not to the keepalive.
    tokio::time::timeout(
        Duration::from_secs(2),
        rig.sub.wait_for_text(&rig.status(), "offline"),
    )
    .await
    .expect("Last Will right after SIGKILL");
}

#[tokio::test]
async fn samples_taken_while_the_broker_is_unreachable_arrive_in_order_once() {
    let (mut rig, broker) = Rig::new("cut").await;
    let proxy = Proxy::start(broker).await;
    let agent = rig.node(&proxy.url(), &["--interval", "100ms"]).await;
    let before = sample(&rig.sub.next_on(&rig.health()).await);
    proxy.cut();
    // Several intervals pass while the agent knows it is cut off.
    let cut_seq = wait_cut_off(&agent, before.seq + 8).await;
    let restored_ms = rackpong_agent::now_ms();
    proxy.restore();

    // Everything the subscriber got since `before`, in arrival order.
    let (mut seen, mut statuses) = (vec![before], Vec::new());
    while seen.last().is_none_or(|s| s.seq < cut_seq + 2) {
        let m = rig.sub.next().await;
        if m.topic == rig.health() {
            seen.push(sample(&m));
        } else if m.topic == rig.status() {
            statuses.push(m.text());
        }
    }
    assert_eq!(statuses, ["offline", "online"], "Last Will, then birth");
    let seqs: Vec<u64> = seen.iter().map(|s| s.seq).collect();
    let expected: Vec<u64> = (seqs[0]..=*seqs.last().unwrap()).collect();
    assert_eq!(seqs, expected, "in order, none missing, none twice");
    assert!(seen.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    let buffered: Vec<&HealthSample> = seen.iter().filter(|s| s.seq <= cut_seq).collect();
    assert!(
        buffered.iter().all(|s| s.ts_ms < restored_ms),
        "original timestamps kept"
    );
    assert!(
        buffered.iter().any(|s| s.buffer.queued > 0),
        "buffer state reported"
    );
}

/// Polls /healthz until the agent is disconnected (red LED on) and has taken
/// sample `seq`; returns its last seq.
async fn wait_cut_off(agent: &Agent, seq: u64) -> u64 {
    tokio::time::timeout(WAIT, async {
        loop {
            let h = agent.healthz().await;
            let last = h["last_seq"].as_u64().unwrap_or(0);
            if h["mqtt_connected"] == false && last >= seq {
                assert_eq!(h["leds"]["red"], true);
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("samples taken while cut off")
}

#[tokio::test]
async fn an_unreachable_broker_at_start_is_retried_until_it_answers() {
    let (mut rig, broker) = Rig::new("late").await;
    let proxy = Proxy::start(broker).await;
    proxy.cut();
    let mut agent = rig.node(&proxy.url(), &["--interval", "100ms"]).await;
    proxy.wait_accepted(3).await;
    assert!(agent.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(agent.healthz().await["mqtt_connected"], false);
    proxy.restore();
    let first = rig.sub.next().await;
    assert_eq!(
        (first.text(), first.topic),
        ("online".to_string(), rig.status())
    );
    let s = sample(&rig.sub.next_on(&rig.health()).await);
    assert_eq!(
        s.seq, 0,
        "the samples taken before the broker answered come first"
    );
}

#[tokio::test]
async fn garbage_sysfs_values_are_null_and_the_sample_is_still_published() {
    let (mut rig, broker) = Rig::new("garbage").await;
    let broken = fixture("broken");
    let _agent = rig
        .node(
            &format!("mqtt://{broker}"),
            &[
                "--interval",
                "100ms",
                "--sysfs-root",
                broken.to_str().unwrap(),
            ],
        )
        .await;
    let m = rig.sub.next_on(&rig.health()).await;
    let json = m.json();
    for field in ["temp_c", "throttle", "uptime_s", "load"] {
        assert!(json[field].is_null(), "{field}: {json}");
    }
    assert_eq!(json["seq"], 0);
    assert!(json["memory"]["total_bytes"].as_u64() > Some(0));
}

#[tokio::test]
async fn ha_discovery_is_sent_at_start_and_again_on_home_assistant_birth() {
    let (mut rig, broker) = Rig::new("ha").await;
    let prefix = format!("{}-ha", rig.rack);
    let mut ha = Subscriber::start(broker, &format!("{prefix}/#")).await;
    let _agent = rig
        .node(
            &format!("mqtt://{broker}"),
            &["--interval", "1s", "--ha-discovery", "--ha-prefix", &prefix],
        )
        .await;
    rig.sub.next_on(&rig.status()).await;
    let mut configs = std::collections::BTreeSet::new();
    while configs.len() < 21 {
        let m = ha.next().await;
        assert!(m.topic.ends_with("/config"), "{}", m.topic);
        assert_eq!(m.json()["availability_topic"], rig.status());
        configs.insert(m.topic);
    }
    assert_eq!(
        configs
            .iter()
            .filter(|t| t.contains("/binary_sensor/"))
            .count(),
        8
    );
    let mut late = Subscriber::start(broker, configs.first().unwrap()).await;
    assert!(late.next().await.retain, "discovery is retained");
    publish_once(broker, &format!("{prefix}/status"), "online").await;
    let again = loop {
        let m = ha.next().await;
        if m.topic.ends_with("/config") {
            break m;
        }
    };
    assert!(configs.contains(&again.topic));
}

async fn publish_once(broker: std::net::SocketAddr, topic: &str, payload: &str) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let opts = MqttOptions::new(
        format!("pub-{:08x}", rand::random::<u32>()),
        broker.ip().to_string(),
        broker.port(),
    );
    let (client, mut el) = AsyncClient::new(opts, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = el.poll().await.unwrap() {
                break;
            }
        }
    })
    .await
    .expect("PUBACK");
}

#[tokio::test]
async fn bad_flags_exit_non_zero_with_one_clear_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["--interval", "1ms"], "--interval"),
        (&["--broker", "http://x"], "--broker"),
        (&["--mqtt-keepalive", "1500ms"], "--mqtt-keepalive"),
        (&["--node-name", "a/b"], "--node-name"),
        (
            &[
                "--mqtt-password-file",
                "/nonexistent/pw",
                "--mqtt-username",
                "u",
            ],
            "/nonexistent/pw",
        ),
        (&["--http-addr", "not-an-address"], "--http-addr"),
    ];
    for (args, expect) in cases {
        let out = tokio::process::Command::new(BIN)
            .arg("node")
            .args(["--broker", "mqtt://127.0.0.1:1"])
            .args(*args)
            .env_remove("RACKPONG_MQTT_PASSWORD")
            .output();
        let out = tokio::time::timeout(WAIT, out)
            .await
            .expect("exits at once")
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        assert!(
            first.contains(expect),
            "{args:?}: first line {first:?} of {stderr}"
        );
    }
    // The password comes from the environment, and needs a username.
    let out = tokio::process::Command::new(BIN)
        .args(["node", "--broker", "mqtt://127.0.0.1:1"])
        .env("RACKPONG_MQTT_PASSWORD", "pw")
        .env_remove("RACKPONG_MQTT_USERNAME")
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("exits at once")
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --mqtt-username"));
}

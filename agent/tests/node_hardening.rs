//! Issue 11, node agent, tried as an attacker and a new user would, with the
//! real binary over a real broker: an oversized command is rejected
//! `too-large` without costing the connection, a retained command is ignored
//! and said so, `/metrics` counts chaos commands by result and reason and
//! shows the active fault, Home Assistant ids of `ha-1` and `ha_1` do not
//! collide, a bad `--sysfs-root` stops the agent naming the path, and logs
//! to a pipe carry no colour codes.

mod chaos_support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chaos_support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::now_ms;
use rackpong_agent::proto::{ChaosAction, NodeCommand, Topics};
use rumqttc::{AsyncClient, MqttOptions, Publish, QoS};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_rackpong-agent");

/// A node agent process; its HTTP address comes from the announce file.
struct Node {
    _child: Child,
    http: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start_node(broker: &EmbeddedBroker, name: &str, extra: &[&str]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chaos.key");
    std::fs::write(&key, SECRET).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let announce = dir.path().join("addr");
    let child = Command::new(BIN)
        .args(["node", "--broker", &broker.url(), "--node-name", name])
        .args(["--http-addr", "127.0.0.1:0", "--interval", "1s"])
        .arg("--announce-file")
        .arg(&announce)
        .args(["--enable-chaos", "--chaos-dry-run", "--chaos-secret-file"])
        .arg(&key)
        .args(extra)
        .env("RACKPONG_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rackpong-agent");
    let http = wait_for(|| {
        std::fs::read_to_string(&announce)
            .ok()
            .and_then(|t| t.trim().parse().ok())
    })
    .await;
    Node {
        _child: child,
        http,
        _dir: dir,
    }
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = probe() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("condition in time")
}

/// A raw client allowed to send big packets (the attacker).
async fn raw_client(broker: &EmbeddedBroker, id: &str) -> AsyncClient {
    let addr = broker.addr();
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
    let (client, mut el) = AsyncClient::new(opts, 16);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
}

/// One sample of `name{labels}` from a Prometheus text exposition.
fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let want = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == want).then(|| value.parse().expect("a number"))
    })
}

async fn scrape(node: &Node) -> String {
    let (status, body) = mqtt_http_get(node.http, "/metrics").await;
    assert_eq!(status, 200);
    body
}

/// Scrapes until `ready` holds (fails the test after [`WAIT`]).
async fn scrape_until(node: &Node, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = scrape(node).await;
        if ready(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never got there: {m}"
        );
        tokio::task::yield_now().await;
    }
}

async fn mqtt_http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn an_oversized_command_is_rejected_too_large_and_costs_no_connection() {
    let broker = broker();
    let node = start_node(&broker, "big1", &[]).await;
    let mut ctl = Controller::new(&broker, "big1").await;
    wait_until_listening(&mut ctl).await;
    let attacker = raw_client(&broker, "attacker").await;
    let huge = format!(r#"{{"id":"huge-1","pad":"{}"}}"#, "x".repeat(1536 * 1024));
    attacker
        .publish(
            Topics::default().node_cmd("big1"),
            QoS::AtLeastOnce,
            false,
            huge,
        )
        .await
        .unwrap();
    let ack = ctl.ack_for("huge-1").await;
    assert_eq!(code(&ack), "too-large", "{ack:?}");
    // Still the same connection, and still answering.
    wait_until_listening(&mut ctl).await;
    let m = scrape(&node).await;
    assert_eq!(
        metric(&m, "rackpong_mqtt_reconnects_total", ""),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "rackpong_mqtt_connection_failures_total", ""),
        Some(0.0)
    );
    let too_large = r#"result="rejected",reason="too-large""#;
    assert_eq!(
        metric(&m, "rackpong_chaos_commands_total", too_large),
        Some(1.0)
    );
    drop(node);
}

fn stop_k3s(node: &str, down_for_s: u64) -> NodeCommand {
    NodeCommand {
        v: 1,
        id: format!("cmd-{}", rand::random::<u32>()),
        node: node.into(),
        action: ChaosAction::StopK3s,
        down_for_s,
        issued_ms: now_ms(),
        nonce: format!("{:032x}", rand::random::<u128>()),
    }
}

#[tokio::test]
async fn a_retained_command_is_ignored_and_metrics_count_by_reason_and_show_the_fault() {
    let broker = broker();
    let planted = stop_k3s("ret1", 60);
    let attacker = raw_client(&broker, "planter").await;
    let bytes = serde_json::to_vec(&planted.clone().sign(SECRET)).unwrap();
    attacker
        .publish(
            Topics::default().node_cmd("ret1"),
            QoS::AtLeastOnce,
            true,
            bytes,
        )
        .await
        .unwrap();
    // Ready once the broker holds it: a new subscriber gets it retained.
    let (_c, mut probe) = client(&broker, "probe", &Topics::default().node_cmd("ret1")).await;
    let held = tokio::time::timeout(WAIT, probe.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(held.retain);
    // The controller listens for acks before the agent starts.
    let mut ctl = Controller::new(&broker, "ret1").await;
    let node = start_node(&broker, "ret1", &[]).await;
    let ack = ctl.ack_for(&planted.id).await;
    assert_eq!(code(&ack), "retained", "{ack:?}");
    wait_until_listening(&mut ctl).await;
    // A forged one, then a live one that is accepted.
    let forged = ctl.send(stop_k3s("ret1", 5), b"wrong key").await;
    assert_eq!(code(&forged), "bad-signature");
    let live = ctl.send(stop_k3s("ret1", 60), SECRET).await;
    assert!(live.accepted, "{live:?}");
    // The ack goes out before the fault's steps have run: wait for the gauge.
    let m = scrape_until(&node, |m| {
        metric(m, "rackpong_chaos_active_fault", r#"action="stop-k3s""#) == Some(1.0)
    })
    .await;
    let count = |labels| metric(&m, "rackpong_chaos_commands_total", labels);
    assert_eq!(
        count(r#"result="rejected",reason="retained""#),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        count(r#"result="rejected",reason="bad-signature""#),
        Some(1.0)
    );
    assert_eq!(count(r#"result="accepted",reason="stop-k3s""#), Some(1.0));
    let active = metric(&m, "rackpong_chaos_active_fault", r#"action="stop-k3s""#);
    assert_eq!(active, Some(1.0));
    let deadline = metric(&m, "rackpong_chaos_deadman_deadline_seconds", "").unwrap();
    let restore_by = live.restore_by_ms.unwrap() as f64 / 1000.0;
    assert!(
        (deadline - restore_by).abs() < 0.01,
        "{deadline} vs {restore_by}"
    );
    assert!(metric(&m, "rackpong_mqtt_buffer_queued", "").is_some());
    assert!(metric(&m, "rackpong_mqtt_buffer_dropped_total", "").is_some());
    drop(node);
}

/// Every discovery config topic seen under `homeassistant/` until `want` arrived.
async fn config_topics(rx: &mut mpsc::Receiver<Publish>, want: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while seen.len() < want {
            let p = rx.recv().await.expect("subscription open");
            if p.topic.ends_with("/config") {
                let cfg: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                seen.push((
                    p.topic.clone(),
                    cfg["availability_topic"].as_str().unwrap().to_string(),
                ));
            }
        }
    })
    .await
    .expect("discovery in time");
    seen
}

#[tokio::test]
async fn home_assistant_ids_of_ha_dash_1_and_ha_underscore_1_do_not_collide() {
    let broker = broker();
    let (ha, mut rx) = client(&broker, "home-assistant", "homeassistant/#").await;
    let a = start_node(&broker, "ha-1", &["--ha-discovery"]).await;
    let b = start_node(&broker, "ha_1", &["--ha-discovery"]).await;
    let per_node = 21;
    let seen = config_topics(&mut rx, 2 * per_node).await;
    let topics: BTreeSet<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics.len(), 2 * per_node, "collision: {topics:#?}");
    let avail: BTreeSet<&str> = seen.iter().map(|(_, a)| a.as_str()).collect();
    let want: BTreeSet<&str> = [
        "rackpong/rack/nodes/ha-1/status",
        "rackpong/rack/nodes/ha_1/status",
    ]
    .into();
    assert_eq!(avail, want);
    // Home Assistant restarts: its birth brings every config back.
    ha.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .await
        .unwrap();
    let again = config_topics(&mut rx, 2 * per_node).await;
    let again: BTreeSet<&str> = again.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(again, topics);
    drop((a, b));
}

async fn run_to_exit(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut err = String::new();
    let mut stderr = child.stderr.take().unwrap();
    let status = tokio::time::timeout(WAIT, async {
        stderr.read_to_string(&mut err).await.unwrap();
        child.wait().await.unwrap()
    })
    .await
    .expect("agent exits in time");
    (status.code(), err)
}

#[tokio::test]
async fn a_missing_or_empty_sysfs_root_is_an_error_naming_the_path() {
    let broker = broker();
    let url = broker.url();
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("no-such-root");
    let empty: &Path = dir.path();
    for root in [missing.as_path(), empty] {
        let root_s = root.to_str().unwrap();
        let args = [
            "node",
            "--broker",
            &url,
            "--node-name",
            "s1",
            "--http-addr",
            "127.0.0.1:0",
            "--sysfs-root",
            root_s,
        ];
        let (code, err) = run_to_exit(&args, &[]).await;
        assert_ne!(code, Some(0), "{err}");
        assert!(
            err.contains(root_s) && err.contains("--sysfs-root"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let broker = broker();
    let url = broker.url();
    let dir = tempfile::tempdir().unwrap();
    let announce = dir.path().join("addr");
    let mut child = Command::new(BIN)
        .args([
            "node",
            "--broker",
            &url,
            "--node-name",
            "c1",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--announce-file")
        .arg(&announce)
        .env("RACKPONG_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for(|| announce.exists().then_some(())).await;
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    child.wait().await.unwrap();
    assert!(err.contains("node role started"), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");
}

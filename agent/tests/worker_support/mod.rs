//! Shared by the worker tests (and, through `#[path]`, the factory tests):
//! an embedded broker, in-process workers on loopback port 0 with a peers
//! file, MQTT subscriptions confirmed active, readiness and metric readers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::mqtt::{LinkConfig, MqttArgs, MqttLink};
use rackpong_agent::worker::{Worker, WorkerArgs};
use rumqttc::Publish;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn broker() -> EmbeddedBroker {
    EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap()
}

/// Worker flags for a test: loopback port 0, a fast refresh.
pub fn args(name: &str, broker: &EmbeddedBroker, rack: &str, peers_file: &Path) -> WorkerArgs {
    WorkerArgs {
        name: Some(name.into()),
        node: Some(format!("node-{name}")),
        listen: "127.0.0.1:0".parse().unwrap(),
        peers: vec![],
        peers_file: Some(peers_file.to_path_buf()),
        peers_dns: None,
        peer_refresh: Duration::from_millis(200),
        max_ttl: 64,
        max_hops: 256,
        max_body_bytes: 64 * 1024,
        forward_attempts: 3,
        forward_timeout: Duration::from_secs(10),
        max_in_flight: 10_000,
        max_forwards: 256,
        announce_file: None,
        start_delay: Duration::ZERO,
        mqtt: MqttArgs {
            broker: broker.url().parse().unwrap(),
            rack: rack.into(),
            mqtt_keepalive: Duration::from_secs(5),
            mqtt_username: None,
            mqtt_password_file: None,
            mqtt_ca_file: None,
            mqtt_buffer: 100_000,
        },
    }
}

/// An in-process worker.
pub struct TestWorker {
    pub name: String,
    pub addr: SocketAddr,
    pub url: String,
    pub cancel: CancellationToken,
    pub task: JoinHandle<Result<(), rackpong_agent::worker::WorkerError>>,
}

pub async fn spawn_worker(args: WorkerArgs) -> TestWorker {
    let name = args.name.clone().unwrap();
    let cancel = CancellationToken::new();
    let w = Worker::bind(args, cancel.clone()).await.unwrap();
    let addr = w.local_addr().unwrap();
    TestWorker {
        name,
        addr,
        url: format!("http://{addr}"),
        cancel,
        task: tokio::spawn(w.run()),
    }
}

/// `n` workers `w1..wn` sharing a peers file listing all of them.
pub async fn spawn_rack(
    n: usize,
    broker: &EmbeddedBroker,
    rack: &str,
    dir: &Path,
) -> Vec<TestWorker> {
    let peers_file = dir.join("peers");
    let mut workers = Vec::new();
    for i in 1..=n {
        workers.push(spawn_worker(args(&format!("w{i}"), broker, rack, &peers_file)).await);
    }
    let urls: Vec<&str> = workers.iter().map(|w| w.url.as_str()).collect();
    write_peers(&peers_file, &urls);
    for w in &workers {
        wait_ready(&w.url).await;
    }
    workers
}

pub fn write_peers(path: &Path, urls: &[&str]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, urls.join("\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// An HTTP client (installs the ring TLS provider reqwest needs).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Waits (bounded) until `GET /readyz` answers 200.
pub async fn wait_ready(url: &str) {
    let client = http();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(r) = client.get(format!("{url}/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} not ready within {WAIT:?}"));
}

/// An MQTT client whose subscriptions are confirmed active.
pub async fn subscriber(
    broker: &EmbeddedBroker,
    id: &str,
    filters: &[String],
) -> (MqttLink, Vec<mpsc::Receiver<Publish>>) {
    let link = MqttLink::start(LinkConfig {
        broker: broker.url().parse().unwrap(),
        client_id: id.into(),
        keepalive: Duration::from_secs(5),
        username: None,
        password: None,
        ca_file: None,
        status_topic: format!("test/{id}/status"),
        buffer_capacity: 100_000,
    });
    let rxs: Vec<_> = filters.iter().map(|f| link.subscribe(f.clone())).collect();
    let probe = format!("test/{id}/probe");
    let mut probe_rx = link.subscribe(probe.clone());
    tokio::time::timeout(WAIT, async {
        loop {
            link.publish(probe.clone(), b"p".to_vec(), false);
            if tokio::time::timeout(Duration::from_millis(200), probe_rx.recv())
                .await
                .is_ok()
            {
                return;
            }
        }
    })
    .await
    .expect("subscriptions active");
    (link, rxs)
}

/// Reads one sample (summed over label sets) from a worker's `/metrics`.
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path(dir: &tempfile::TempDir, f: &str) -> PathBuf {
    dir.path().join(f)
}

/// A `rackpong-agent worker` process of `bin` named `name`, on loopback port
/// 0 with the given peers file; returns it with its base URL once it has
/// announced its address. `extra` flags are appended.
pub async fn spawn_process(
    bin: &str,
    name: &str,
    broker_url: &str,
    rack: &str,
    peers_file: &Path,
    extra: &[&str],
) -> (tokio::process::Child, String) {
    let announce = peers_file.with_file_name(format!("{name}.addr"));
    let child = tokio::process::Command::new(bin)
        .args(["worker", "--name", name, "--listen", "127.0.0.1:0"])
        .args(["--node", &format!("node-{name}"), "--broker", broker_url])
        .args(["--rack", rack, "--mqtt-buffer", "100000"])
        .arg("--announce-file")
        .arg(&announce)
        .arg("--peers-file")
        .arg(peers_file)
        .args(extra)
        .env("RACKPONG_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn worker process");
    let addr = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(s) = tokio::fs::read_to_string(&announce).await
                && s.ends_with('\n')
            {
                return s.trim().to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} did not announce its address"));
    (child, format!("http://{addr}"))
}

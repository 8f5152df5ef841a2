//! The rack's emergency stop with real processes: two chaos-enabled node
//! agents (the `rackpong agent node` binary, dry-run) on the embedded broker,
//! a fault in force on both, `rackpong estop` as its own process: both
//! restore within 1 s of the stop reaching the broker, new commands are
//! refused `estop`, `rackpong estop --clear` lifts it and commands are
//! accepted again; an agent restarted while the stop is retained comes back
//! stopped. Runs against Debian's mosquitto when `RACKPONG_TEST_BROKER` is
//! set (`.ci/mosquitto-interop.sh`), on a rack of its own.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::chaos::Secret;
use rackpong_agent::proto::{ChaosAction, CommandAck, SignedEstop, Topics};
use rackpong_controller::cluster::k3s::nodecmd::MqttNodeCommander;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_rackpong");
const SECRET: &[u8] = b"estop rack secret";
const WAIT: Duration = Duration::from_secs(15);

fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("chaos.key");
    std::fs::write(&path, SECRET).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The embedded broker, or the external one of `RACKPONG_TEST_BROKER`.
struct Broker {
    _embedded: Option<EmbeddedBroker>,
    url: String,
    addr: SocketAddr,
}

fn broker() -> Broker {
    if let Ok(url) = std::env::var("RACKPONG_TEST_BROKER") {
        let hostport = url.strip_prefix("mqtt://").expect("mqtt://host:port");
        let addr = hostport
            .to_socket_addrs()
            .expect("resolvable RACKPONG_TEST_BROKER")
            .next()
            .unwrap();
        return Broker {
            _embedded: None,
            url,
            addr,
        };
    }
    let b = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    Broker {
        url: b.url(),
        addr: b.addr(),
        _embedded: Some(b),
    }
}

fn agent(broker: &str, rack: &str, node: &str, key: &Path) -> Child {
    Command::new(BIN)
        .args([
            "agent",
            "node",
            "--broker",
            broker,
            "--rack",
            rack,
            "--node-name",
            node,
        ])
        .args(["--http-addr", "127.0.0.1:0", "--interval", "1s"])
        .args([
            "--enable-chaos",
            "--chaos-dry-run",
            "--chaos-uplink",
            "rp-none0",
        ])
        .arg("--chaos-secret-file")
        .arg(key)
        .env("RACKPONG_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rackpong agent node")
}

async fn estop(broker: &str, rack: &str, key: &Path, clear: bool) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["estop", "--broker", broker, "--rack", rack, "--wait", "5s"])
        .arg("--chaos-secret-file")
        .arg(key)
        .env("RACKPONG_LOG", "warn")
        .kill_on_drop(true);
    if clear {
        cmd.arg("--clear");
    }
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("rackpong estop finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn commander(broker: &Broker, rack: &str, timeout: Duration) -> MqttNodeCommander {
    let addr = broker.addr;
    let id = format!("ctl-{}", rand::random::<u32>());
    let opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    let secret = Secret::from_bytes(SECRET);
    MqttNodeCommander::start(
        opts,
        Topics::new(rack),
        secret,
        timeout,
        CancellationToken::new(),
    )
}

/// Harmless `restore` probes (accepted even under a stop) until `node` answers.
async fn wait_until_listening(probe: &MqttNodeCommander, node: &str) {
    tokio::time::timeout(WAIT, async {
        while probe
            .send_command(node, ChaosAction::Restore, Duration::ZERO)
            .await
            .is_err()
        {}
    })
    .await
    .unwrap_or_else(|_| panic!("{node} listening for commands"));
}

async fn send(ctl: &MqttNodeCommander, node: &str, action: ChaosAction) -> CommandAck {
    ctl.send_command(node, action, Duration::from_secs(60))
        .await
        .unwrap()
}

fn code(ack: &CommandAck) -> &str {
    assert!(!ack.accepted, "expected a rejection, got {ack:?}");
    ack.reason.split(':').next().unwrap()
}

/// The first estop seen on the broker's topic (retained or live), with the
/// instant the test saw it.
async fn watch_estop(broker: &Broker, rack: &str) -> mpsc::Receiver<(Instant, SignedEstop)> {
    let addr = broker.addr;
    let id = format!("watch-{}", rand::random::<u32>());
    let (client, mut el) =
        AsyncClient::new(MqttOptions::new(id, addr.ip().to_string(), addr.port()), 16);
    client
        .subscribe(Topics::new(rack).estop(), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(16);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut ready = Some(ready_tx);
        while let Ok(ev) = el.poll().await {
            match ev {
                Event::Incoming(Packet::SubAck(_)) => drop(ready.take().map(|r| r.send(()))),
                Event::Incoming(Packet::Publish(p)) if !p.payload.is_empty() => {
                    let e = serde_json::from_slice(&p.payload).unwrap();
                    let _ = tx.send((Instant::now(), e)).await;
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(WAIT, ready_rx).await.unwrap().unwrap();
    rx
}

/// Acks with `id` from each of `nodes`, with their arrival instants.
async fn acks_for(
    acks: &mut broadcast::Receiver<CommandAck>,
    id: &str,
    nodes: &[&str],
) -> Vec<(Instant, CommandAck)> {
    let mut got: Vec<(Instant, CommandAck)> = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < nodes.len() {
            let a = acks.recv().await.unwrap();
            if a.id == id && nodes.contains(&a.node.as_str()) {
                got.push((Instant::now(), a));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("acks of {id} from {nodes:?}, got {got:?}"));
    got
}

#[tokio::test]
async fn estop_restores_two_agents_refuses_commands_until_cleared_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path());
    let broker = broker();
    let url = broker.url.clone();
    // A rack of its own: an external broker keeps retained stops across runs.
    let rack = format!("estop{:08x}", rand::random::<u32>());
    let rack = rack.as_str();
    let mut n1 = agent(&url, rack, "n1", &key);
    let _n2 = agent(&url, rack, "n2", &key);
    let probe = commander(&broker, rack, Duration::from_millis(500));
    let ctl = commander(&broker, rack, WAIT);
    let mut acks = ctl.acks();
    for n in ["n1", "n2"] {
        wait_until_listening(&probe, n).await;
        let ack = send(&ctl, n, ChaosAction::NetDrop).await;
        assert!(ack.accepted, "{ack:?}");
    }

    let mut seen = watch_estop(&broker, rack).await;
    let out = estop(&url, rack, &key, false).await;
    let (at, stop) = tokio::time::timeout(WAIT, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(stop.estop.engaged);
    for (arrived, ack) in acks_for(&mut acks, &stop.estop.id, &["n1", "n2"]).await {
        assert!(ack.accepted, "{ack:?}");
        assert!(ack.reason.contains("restored net-drop"), "{ack:?}");
        let took = arrived.saturating_duration_since(at);
        assert!(
            took < Duration::from_secs(1),
            "{} restored after {took:?}",
            ack.node
        );
    }
    assert!(
        out.contains("engaged") && out.contains("ok   n1") && out.contains("ok   n2"),
        "{out}"
    );

    for n in ["n1", "n2"] {
        assert_eq!(code(&send(&ctl, n, ChaosAction::StopK3s).await), "estop");
        assert_eq!(code(&send(&ctl, n, ChaosAction::Reboot).await), "estop");
    }

    // Restarted while the stop is retained: it comes back stopped.
    kill(Pid::from_raw(n1.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(WAIT, n1.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let _n1 = agent(&url, rack, "n1", &key);
    let again = acks_for(&mut acks, &stop.estop.id, &["n1"]).await;
    assert!(again[0].1.reason.contains("estop engaged"), "{again:?}");
    wait_until_listening(&probe, "n1").await;
    assert_eq!(code(&send(&ctl, "n1", ChaosAction::StopK3s).await), "estop");

    let out = estop(&url, rack, &key, true).await;
    assert!(
        out.contains("cleared") && out.contains("ok   n1") && out.contains("ok   n2"),
        "{out}"
    );
    let (_, clear) = tokio::time::timeout(WAIT, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!clear.estop.engaged && clear.estop.seq > stop.estop.seq);
    for n in ["n1", "n2"] {
        let ack = send(&ctl, n, ChaosAction::StopK3s).await;
        assert!(ack.accepted, "{ack:?}");
    }
}
